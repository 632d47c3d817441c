"""`openphm link-files` reading users' files: dates in any common format, id columns, extra columns."""

from pathlib import Path

import polars as pl
import pytest

from openphm.identity.file_columns import (
    LinkFilesError,
    add_split_names,
    choose_fields,
    find_id_column,
    parse_dates,
)
from openphm.identity.link_files import blocking, link_files

FILE = Path("people.csv")


@pytest.mark.parametrize("text", ["1950-02-03", "19500203", "03/02/1950", "3/2/1950", "3 Feb 1950", "03 feb 1950",
                                  "3 February 1950", "3-Feb-1950", "03-02-1950", "03.02.1950", "1950/02/03",
                                  "1950-02-03 00:00:00", "1950-02-03T10:30:00", " 3 FEB 1950 ", "03/02/1950 00:00"])
def test_each_date_format_reads(text):
    assert parse_dates(pl.Series("dob", [text]), FILE, "dob").to_list() == ["1950-02-03"]


def test_month_first_dates_are_read_when_only_they_make_sense():
    values = pl.Series("dob", ["02/13/1950", "12/31/1961", "01/02/1970"])
    assert parse_dates(values, FILE, "dob").to_list() == ["1950-02-13", "1961-12-31", "1970-01-02"]


def test_dates_that_do_not_exist_keep_their_shape_and_blanks_stay_blank():
    values = pl.Series("dob", ["19450493", "31/02/1950", None, "", "1950-02-03"])
    assert parse_dates(values, FILE, "dob").to_list() == ["1945-04-93", "1950-02-31", None, None, "1950-02-03"]


def test_an_unreadable_date_column_is_one_line_naming_file_and_column():
    values = pl.Series("birth", ["tenth of December", "soon", "1950-02-03"])
    with pytest.raises(LinkFilesError) as caught:
        parse_dates(values, FILE, "birth")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("people.csv: column 'birth' has dates that cannot be read (e.g. row 1;")
    assert "tenth of December" not in message  # a date of birth identifies: only its row is named
    assert "YYYY-MM-DD, YYYYMMDD, dd/mm/yyyy or d Mon yyyy" in message


def test_link_files_names_the_file_and_column_of_unreadable_dates(tmp_path):
    left, right = tmp_path / "left.csv", tmp_path / "right.csv"
    left.write_text("first_name,surname,dob\nAda,Lovelace,1951-12-10\nAlan,Turing,1962-06-23\n")
    right.write_text("first_name,surname,Date of Birth\nAda,Lovelace,Dec 10th\nAlan,Turing,June\n")
    with pytest.raises(LinkFilesError, match=r"^right\.csv: column 'Date of Birth' has dates that cannot be read"):
        link_files(left, right, tmp_path / "links.csv")


FEBRL_COLUMNS = ["rec_id", "given_name", "surname", "street_number", "address_1", "address_2", "suburb",
                 "postcode", "state", "date_of_birth", "soc_sec_id"]


def _frame(columns: list[str], rows: list[list[str]]) -> pl.DataFrame:
    return pl.DataFrame([pl.Series(c, [r[i] for r in rows], dtype=pl.Utf8) for i, c in enumerate(columns)])


def test_every_column_people_have_is_compared_and_the_id_is_not():
    row = ["rec-1-org", "ada", "lovelace", "12", "st james square", "ockham park", "ockham", "4223", "nsw",
           "19151210", "5304218"]
    frame = _frame(FEBRL_COLUMNS, [row])
    ids = (find_id_column(frame, FILE, None), find_id_column(frame, FILE, None))
    assert ids == ("rec_id", "rec_id")
    fields = choose_fields(frame, FILE, frame, FILE, None, ids)
    assert {f.key: f.left for f in fields} == {
        "given_name": "given_name", "family_name": "surname", "date_of_birth": "date_of_birth",
        "postcode": "postcode", "street_number": "street_number", "address_1": "address_1",
        "address_2": "address_2", "town": "suburb", "state": "state", "other_id": "soc_sec_id"}
    rules = {cols for _, cols in blocking(fields, uk_postcodes=False)}
    assert {("other_id",), ("date_of_birth",), ("family_name", "given_name"), ("street_number", "postcode")} <= rules


def test_columns_can_be_named_including_ones_with_no_known_meaning():
    left = _frame(["Forename", "Surname", "Member No", "id"], [["Ada", "Lovelace", "A-17", "1"]])
    right = _frame(["first_name", "last_name", "membership", "key"], [["Ada", "Lovelace", "A17", "x"]])
    fields = choose_fields(left, Path("l.csv"), right, Path("r.csv"),
                           ["given_name", "family_name", "member no=membership"], ("id", None))
    assert [(f.key, f.kind, f.left, f.right) for f in fields] == [
        ("given_name", "name", "Forename", "first_name"), ("family_name", "name", "Surname", "last_name"),
        ("member_no", "text", "Member No", "membership")]
    with pytest.raises(LinkFilesError, match=r"^r\.csv has no column 'Member No' \(its columns: first_name, "):
        choose_fields(left, Path("l.csv"), right, Path("r.csv"), ["Member No"], (None, None))


def test_id_columns_are_found_or_named_and_must_identify_rows():
    pandas_index = _frame(["column0", "name"], [["0", "Ada Lovelace"], ["1", "Alan Turing"]])
    assert find_id_column(pandas_index, FILE, None) == "column0"
    repeated = _frame(["id", "nhs"], [["7", "9434765919"], ["7", "9434765870"]])
    assert find_id_column(repeated, FILE, None) is None
    assert find_id_column(repeated, FILE, "NHS") == "nhs"
    with pytest.raises(LinkFilesError, match=r"^people\.csv: id column 'id' does not identify rows \(row 2 repeats"):
        find_id_column(repeated, FILE, "id")
    with pytest.raises(LinkFilesError, match=r"^people\.csv has no id column 'ref'"):
        find_id_column(repeated, FILE, "ref")


def test_a_full_name_is_split_either_way_round():
    frame = add_split_names(_frame(["name"], [["Ada Lovelace"], ["TURING, Alan Mathison"]]))
    assert frame.select("given_name", "family_name").rows() == [("Ada", "Lovelace"), ("Alan", "TURING")]


def test_a_repeated_id_is_named_by_row_not_by_value(tmp_path):
    from openphm.identity.file_columns import find_id_column
    frame = pl.DataFrame({"rec_id": ["4010232137", "9434765919", "4010232137"], "name": ["a", "b", "c"]})
    with pytest.raises(LinkFilesError) as caught:
        find_id_column(frame, FILE, "rec_id")
    assert "row 3 repeats" in str(caught.value) and "4010232137" not in str(caught.value)
