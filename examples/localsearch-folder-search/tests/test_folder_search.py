"""The folder engine over real files (Markdown, text, HTML and a PDF), with localsearch.testing."""

from __future__ import annotations

import pytest

import localsearch_folder_search as folder_search


def text_pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose text is ``lines`` (Helvetica), with a correct cross-reference table."""
    stream = "BT /F1 11 Tf 50 780 Td 14 TL " + " ".join(
        "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = "%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n" + "".join(f"{o:010d} 00000 n \n" for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return out.encode("latin-1")


@pytest.fixture
def notes(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "garden.md").write_text(
        "# Garden diary\n\nThe quince tree by the east wall was planted in March 2019 and gave its first fruit "
        "three autumns later, eleven quinces in all, picked on a wet Sunday in October.\n")
    (folder / "bikes.txt").write_text(
        "The blue touring bike needs a new chain every 3000 kilometres; the last one was fitted in May at the "
        "shop on Cable Street, together with new brake pads for the front wheel.\n")
    (folder / "recipe.html").write_text(
        "<html><head><title>Plum jam</title></head><body><article><h1>Plum jam</h1><p>Cook two kilograms of "
        "plums with one kilogram of sugar for forty minutes, stirring, until a drop sets on a cold plate.</p>"
        "</article></body></html>")
    (folder / "boiler.pdf").write_bytes(text_pdf([
        "Boiler service record.",
        "The boiler was serviced on 14 February 2024 by Hartley Heating,",
        "who replaced the pressure relief valve and set the pressure to 1.3 bar.",
        "The next service is due in February of the following year.",
    ]))
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    return folder


def test_the_engine_finds_files_by_their_words_and_sends_nothing(notes, localsearch_pipeline):
    pipeline = localsearch_pipeline(folder_search, engines=["folder"], folder_search_path=str(notes),
                                    allowed_folders=[str(notes)])
    hits = folder_search.FolderEngine().search("boiler pressure valve", 5, type("C", (), {"config": pipeline.config}))
    assert hits[0].url == (notes / "boiler.pdf").as_uri() and hits[0].title == "Boiler service record."
    assert all(h.url.startswith("file://") for h in hits)


@pytest.mark.parametrize("question, answer, file", [
    ("When was the boiler serviced?", "14 February 2024", "boiler.pdf"),
    ("When was the quince tree planted?", "March 2019", "garden.md"),
    ("How often does the touring bike need a new chain?", "3000 kilometres", "bikes.txt"),
    ("How long do you cook plum jam?", "forty minutes", "recipe.html"),
])
def test_answers_cite_the_file_they_came_from(notes, localsearch_pipeline, question, answer, file):
    from localsearch.testing import localsearch_answer

    pipeline = localsearch_pipeline(folder_search, engines=["folder"], folder_search_path=str(notes),
                                    allowed_folders=[str(notes)])
    result = localsearch_answer(pipeline, question)
    assert answer in result["answer"], result["answer"]
    assert result["citations"][0]["url"] == (notes / file).as_uri()
    assert result["requests"] == []  # the user's own files: nothing left the machine


def test_a_folder_that_is_not_allowed_is_refused_with_what_to_set(notes, localsearch_pipeline):
    from localsearch.testing import localsearch_answer

    pipeline = localsearch_pipeline(folder_search, engines=["folder"], folder_search_path=str(notes))
    result = localsearch_answer(pipeline, "When was the boiler serviced?")
    assert "allowed_folders" in " ".join(result["errors"]) and "fatal" in result


def test_a_file_outside_the_allowed_folder_is_not_read(notes, tmp_path, localsearch_pipeline):
    from localsearch.urlpolicy import UrlPolicy

    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nNot to be read.")
    pipeline = localsearch_pipeline(folder_search, allowed_folders=[str(notes)])
    policy = UrlPolicy.from_config(pipeline.config)
    assert policy.check_syntax((notes / "garden.md").as_uri()) == ""
    assert "allowed_folders" in policy.check_syntax(secret.as_uri())
    assert "allowed_folders" in policy.check_syntax((notes / ".." / "secret.md").as_uri())
