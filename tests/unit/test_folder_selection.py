from __future__ import annotations

from types import SimpleNamespace

import pytest
from imapclient import IMAPClient

from futurnal.imap.folders import ServerFolder, from_imapclient
from futurnal.sync.folder_plan import excluded_folders, missing_folders, nearest_folder
from futurnal.sync.folder_selection import (
    FolderSpec,
    gmail_default_spec,
    is_pattern,
    missing_exact,
    refind_folder,
    select_folders,
    watch_outside,
    watchable,
)


def folder(name: str, *flags: str, delimiter: str | None = "/") -> ServerFolder:
    return ServerFolder(name=name, delimiter=delimiter, flags=frozenset(flags or {"\\HasNoChildren"}))


def slash_listing() -> list[ServerFolder]:
    return [
        folder("Archive", "\\HasChildren", "\\Archive"),
        folder("Archive/2023", "\\HasChildren"),
        folder("Archive/2023/Q1"),
        folder("Archive/2024"),
        folder("INBOX"),
        folder("Projects", "\\HasChildren"),
        folder("Projects/Alpha", "\\HasChildren"),
        folder("Projects/Alpha/Notes"),
        folder("Sent", "\\Sent"),
        folder("Trash", "\\Trash"),
        folder("Spam", "\\Junk"),
    ]


def dot_listing() -> list[ServerFolder]:
    return [
        folder("INBOX", "\\HasChildren", delimiter="."),
        folder("INBOX.Archive", "\\HasChildren", delimiter="."),
        folder("INBOX.Archive.2023", delimiter="."),
        folder("INBOX.Sent", "\\Sent", delimiter="."),
        folder("INBOX.a/b", delimiter="."),
    ]


def gmail_listing() -> list[ServerFolder]:
    return [
        folder("INBOX", "\\HasNoChildren"),
        folder("Work", "\\HasChildren"),
        folder("Work/Clients", "\\HasNoChildren"),
        folder("[Gmail]", "\\HasChildren", "\\Noselect"),
        folder("[Gmail]/All Mail", "\\All", "\\HasNoChildren"),
        folder("[Gmail]/Drafts", "\\Drafts", "\\HasNoChildren"),
        folder("[Gmail]/Sent Mail", "\\HasNoChildren", "\\Sent"),
        folder("[Gmail]/Spam", "\\HasNoChildren", "\\Junk"),
        folder("[Gmail]/Starred", "\\Flagged", "\\HasNoChildren"),
        folder("[Gmail]/Trash", "\\HasNoChildren", "\\Trash"),
    ]


def pick(include: str, exclude: str = "", listing: list[ServerFolder] | None = None) -> list[str]:
    return select_folders(FolderSpec.parse(include, exclude), listing or slash_listing())


def test_exact_names_select_only_those_folders() -> None:
    assert pick("Sent,Archive/2024") == ["Archive/2024", "Sent"]


def test_exact_name_of_a_parent_does_not_select_its_children() -> None:
    assert pick("Archive") == ["Archive"]


def test_inbox_matches_in_any_case_and_keeps_the_server_spelling() -> None:
    assert pick("inbox") == ["INBOX"]
    assert pick("Inbox.Archive", listing=dot_listing()) == ["INBOX.Archive"]


def test_names_other_than_inbox_are_case_sensitive() -> None:
    assert pick("sent,archive/*") == []


def test_single_star_stays_within_one_level_with_a_slash_delimiter() -> None:
    assert pick("Archive/*") == ["Archive/2023", "Archive/2024"]


def test_double_star_matches_any_depth_with_a_slash_delimiter() -> None:
    assert pick("Archive/**") == ["Archive/2023", "Archive/2023/Q1", "Archive/2024"]


def test_single_star_stays_within_one_level_with_a_dot_delimiter() -> None:
    assert pick("INBOX/*", listing=dot_listing()) == ["INBOX.Archive", "INBOX.Sent", "INBOX.a/b"]


def test_double_star_matches_any_depth_with_a_dot_delimiter() -> None:
    expected = ["INBOX.Archive", "INBOX.Archive.2023", "INBOX.Sent", "INBOX.a/b"]
    assert pick("inbox/**", listing=dot_listing()) == expected


def test_star_never_crosses_the_delimiter_even_when_the_pattern_spells_it_natively() -> None:
    assert pick("INBOX.*", listing=dot_listing()) == ["INBOX.Archive", "INBOX.Sent", "INBOX.a/b"]


def test_exact_server_spelling_reaches_a_name_holding_a_slash_on_a_dot_server() -> None:
    assert pick("INBOX.a/b", listing=dot_listing()) == ["INBOX.a/b"]
    assert pick("INBOX/a/b", listing=dot_listing()) == []


def test_leading_double_star_also_matches_the_top_level() -> None:
    assert pick("**/Notes,**/Sent") == ["Projects/Alpha/Notes", "Sent"]


def test_middle_double_star_matches_zero_or_more_levels() -> None:
    assert pick("Archive/**/Q1,Projects/**/Alpha") == ["Archive/2023/Q1", "Projects/Alpha"]


def test_question_mark_matches_exactly_one_character_within_a_level() -> None:
    assert pick("Archive/202?") == ["Archive/2023", "Archive/2024"]
    assert pick("Archive/20?,Archive/2024?") == []
    assert pick("Archive?2024") == []


def test_exact_names_written_with_slash_find_dot_delimited_folders() -> None:
    assert pick("INBOX/Archive/2023", listing=dot_listing()) == ["INBOX.Archive.2023"]


def test_exclusion_wins_over_inclusion() -> None:
    assert pick("**", "Archive/**,Projects,Spam,Trash") == [
        "INBOX", "Archive", "Projects/Alpha", "Projects/Alpha/Notes", "Sent"
    ]


def test_special_use_includes_accept_both_spellings() -> None:
    assert pick("\\Sent,special:ARCHIVE") == ["Archive", "Sent"]


def test_special_use_excludes_accept_both_spellings() -> None:
    assert pick("*", "\\Junk,special:trash") == ["INBOX", "Archive", "Projects", "Sent"]


def test_special_use_flags_match_whatever_their_case() -> None:
    listing = [folder("Gesendet", "\\SENT"), folder("INBOX")]
    assert listing[0].special_use == "\\Sent"
    assert pick("\\Sent", listing=listing) == ["Gesendet"]


def test_noselect_and_nonexistent_folders_are_never_selected() -> None:
    listing = [folder("Lists", "\\Noselect", "\\HasChildren"), folder("Lists/dev"),
               folder("Gone", "\\NonExistent")]
    assert pick("**,Lists,Gone", listing=listing) == ["Lists/dev"]


def test_inbox_comes_first_then_listing_order_without_duplicates() -> None:
    listing = slash_listing() + [folder("Sent", "\\Sent")]
    assert pick("Trash,Sent,\\Sent,S*,INBOX,inbox", listing=listing) == [
        "INBOX", "Sent", "Trash", "Spam"
    ]


def test_missing_exact_names_only_exact_entries_the_server_lacks() -> None:
    spec = FolderSpec.parse("INBOX,Nope,Archive/1999/*,\\Drafts,Lists,[Gmail]/Spam")
    listing = slash_listing() + [folder("Lists", "\\Noselect")]
    assert missing_exact(spec, listing) == ["Nope", "Lists", "[Gmail]/Spam"]


def test_gmail_default_selects_only_all_mail() -> None:
    assert select_folders(gmail_default_spec(), gmail_listing(), gmail=True) == ["[Gmail]/All Mail"]


def test_gmail_keeps_label_folders_listed_besides_all_mail() -> None:
    spec = FolderSpec.parse("\\All,Work/**,INBOX")
    chosen = select_folders(spec, gmail_listing(), gmail=True)
    assert chosen == ["INBOX", "Work/Clients", "[Gmail]/All Mail"]


def test_gmail_finds_all_mail_by_name_when_list_has_no_special_use() -> None:
    listing = [folder("[Google Mail]/All Mail"), folder("INBOX")]
    assert select_folders(gmail_default_spec(), listing, gmail=True) == ["[Google Mail]/All Mail"]
    assert select_folders(gmail_default_spec(), listing) == []


def test_gmail_bracket_names_are_exact_not_patterns() -> None:
    assert not is_pattern("[Gmail]/Spam")
    assert is_pattern("Work/*") and is_pattern("Work/200?")
    assert pick("[Gmail]/Spam", listing=gmail_listing()) == ["[Gmail]/Spam"]


@pytest.mark.parametrize(
    ("include", "exclude", "message"),
    [
        ("", "", "no folders to include"),
        (" , ,", "", "no folders to include"),
        ("\\Important", "", "unknown special-use folder '\\\\Important'"),
        ("INBOX", "special:bin", "unknown special-use folder 'special:bin'"),
    ],
)
def test_parse_rejects_empty_includes_and_unknown_special_use(
    include: str, exclude: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("\\", "\\\\")):
        FolderSpec.parse(include, exclude)


def test_parse_strips_blanks_and_spells_special_use_canonically() -> None:
    spec = FolderSpec.parse(" INBOX , Archive/* ,, special:Sent ", "\\junk, Trash ")
    assert spec == FolderSpec(("INBOX", "Archive/*", "\\Sent"), ("\\Junk", "Trash"))


def test_document_round_trip_keeps_the_spec() -> None:
    spec = FolderSpec.parse("INBOX,Work, Clients,\\All", "\\Trash")
    doc = spec.to_document()
    assert doc == {"include": ["INBOX", "Work", "Clients", "\\All"], "exclude": ["\\Trash"]}
    assert FolderSpec.from_document(doc) == spec


def test_from_document_rejects_a_damaged_document() -> None:
    with pytest.raises(ValueError, match="must be a list"):
        FolderSpec.from_document({"include": "INBOX"})
    with pytest.raises(ValueError, match="no folders to include"):
        FolderSpec.from_document({"include": []})


def test_refind_folder_follows_a_renamed_special_use_folder() -> None:
    listing = [folder("INBOX"), folder("Sent Items", "\\Sent"), folder("Old", "\\Sent", "\\Noselect")]
    assert refind_folder("Sent", "\\Sent", listing) == "Sent Items"


def test_refind_folder_refuses_to_guess_between_two_candidates() -> None:
    listing = [folder("Sent Items", "\\Sent"), folder("Sent Messages", "\\Sent")]
    assert refind_folder("Sent", "\\Sent", listing) is None


def test_refind_folder_needs_a_special_use_attribute() -> None:
    assert refind_folder("Receipts", None, [folder("Receipts 2024")]) is None


def test_from_imapclient_converts_list_folders_tuples() -> None:
    entries = [
        ((b"\\HasNoChildren",), b"/", "INBOX"),
        ((b"\\HasChildren", b"\\Noselect"), b"/", "[Gmail]"),
        ((b"\\All", b"\\HasNoChildren"), b"/", "[Gmail]/All Mail"),
        ((), None, "Flat"),
    ]
    folders = from_imapclient(entries)
    assert folders[0] == ServerFolder("INBOX", "/", frozenset({"\\HasNoChildren"}))
    assert not folders[1].selectable
    assert folders[2].special_use == "\\All"
    assert folders[3].delimiter is None and folders[3].flags == frozenset()


def test_from_imapclient_reads_what_imapclient_parses_from_a_raw_list_response() -> None:
    raw = [
        b'(\\HasNoChildren) "/" "INBOX"',
        b'(\\HasChildren \\Noselect) "/" "[Gmail]"',
        b'(\\All \\HasNoChildren) "/" "[Gmail]/All Mail"',
        b'(\\HasNoChildren \\Sent) "/" "[Gmail]/Sent Mail"',
        b'(\\HasNoChildren) "/" "&AMk-t&AOk-/2024"',
        b'(\\HasNoChildren) "/" 2023',
    ]
    # The parsing half of IMAPClient.list_folders(), fed a recorded LIST response.
    entries = IMAPClient._proc_folder_list(SimpleNamespace(folder_encode=True), raw)
    folders = from_imapclient(entries)
    assert [f.name for f in folders] == [
        "INBOX", "[Gmail]", "[Gmail]/All Mail", "[Gmail]/Sent Mail", "Été/2024", "2023"
    ]
    assert select_folders(FolderSpec.parse("INBOX,Été/*,\\Sent,2023"), folders) == [
        "INBOX", "[Gmail]/Sent Mail", "Été/2024", "2023"
    ]
    assert select_folders(gmail_default_spec(), folders, gmail=True) == ["[Gmail]/All Mail"]


@pytest.mark.parametrize(("include", "exclude", "watch", "kept"), [
    (["Att"], ["INBOX"], ["INBOX"], ()),  # excluded: never watched, whatever an old record says
    (["Att"], [], ["INBOX", "Att"], ("Att",)),  # not included
    (["INBOX", "Archive/**"], ["Archive/2024"], ["Archive/2023", "Archive/2024", "Archive.2024"], ("Archive/2023",)),
    (["\\All"], [], ["INBOX", "[Gmail]/All Mail"], ("[Gmail]/All Mail",)),  # a role may be any folder but INBOX
    (["INBOX", "Sent"], ["\\Trash"], ["INBOX", "Sent"], ("INBOX", "Sent")),  # a role excluded: `imap add` checks
    (["INBOX", "Archive/*"], [], ["INBOX", "Archive/*", "\\All"], ("INBOX",)),  # patterns and roles name no folder
    ([], [], ["INBOX"], ()),  # a selection that cannot be read selects nothing
])
def test_only_folders_the_selection_may_hold_are_watched(
    include: list[str], exclude: list[str], watch: list[str], kept: tuple[str, ...]
) -> None:
    assert watchable(include, exclude, watch) == kept


def test_watch_entries_are_checked_against_the_resolved_selection() -> None:
    listing = slash_listing()
    spec = FolderSpec(("\\Archive", "Projects/**", "INBOX"), ("\\Junk", "Projects/Alpha/Notes"))
    selected = select_folders(spec, listing)
    assert watch_outside(["inbox", "Archive", "Projects/Alpha"], selected, listing) == []
    assert watch_outside(["Spam", "Projects/Alpha/Notes", "Sent", "Nope", "Projects/*"], selected, listing) == [
        "Spam", "Projects/Alpha/Notes", "Sent", "Nope", "Projects/*"]
    dotted = dot_listing()
    assert watch_outside(["INBOX/Archive", "INBOX/Sent"], select_folders(FolderSpec(("INBOX/*",), ("\\Sent",)),
                                                                          dotted), dotted) == ["INBOX/Sent"]


def test_a_missing_name_suggests_the_folder_it_most_likely_misspells() -> None:
    assert nearest_folder("Archvie", slash_listing()) == "Archive"
    assert nearest_folder("Archive/2042", slash_listing()) == "Archive/2024"
    assert nearest_folder("Receipts", slash_listing()) is None
    # Never a folder that cannot be selected; on a "." server the "/" spelling is suggested too.
    assert nearest_folder("Archiv", [folder("Archive", "\\Noselect"), folder("INBOX")]) is None
    assert nearest_folder("INBOX/Archiv", dot_listing()) == "INBOX/Archive"


def test_the_missing_folders_line_says_did_you_mean() -> None:
    listing = slash_listing()
    assert missing_folders(["Archvie"], listing) == (
        "folder 'Archvie' does not exist on the server; did you mean 'Archive'?")
    assert missing_folders(["Receipts"], listing, "imap.example.org:993") == (
        "folder 'Receipts' does not exist on imap.example.org:993")
    assert missing_folders(["Archvie", "Receipts", "Sentt"], listing) == (
        "folders 'Archvie', 'Receipts', 'Sentt' do not exist on the server; "
        "did you mean 'Archive' for 'Archvie', 'Sent' for 'Sentt'?")


def test_excluded_folders_are_the_ones_an_exclusion_takes_from_the_inclusions() -> None:
    spec = FolderSpec.parse("INBOX,Archive/**", "Archive/2023/*,\\Trash")
    assert excluded_folders(spec, slash_listing()) == ("Archive/2023/Q1",)  # Trash was never included
    assert excluded_folders(FolderSpec.parse("INBOX,Archive"), slash_listing()) == ()
