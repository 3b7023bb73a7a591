"""Attachment text extraction: what can be extracted, in a child process under hard limits.

Plain code, no actors: :mod:`.extract` turns bytes into text (run in the child),
:mod:`.child` is the child's entry point, :mod:`.runner` starts and polices children,
:mod:`.queue` is the durable list of extractions still to do, :mod:`.plan` decides per
attachment what happens to it. The actor around it is ``futurnal.actors.attachment_processor``.
"""
