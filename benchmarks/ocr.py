"""10. Images, text: OCR images/s through ``localsearch.images.read_text`` (the ``image_text``
hook, the OCR plugin's size checks and scaling) vs raw ``rapidocr_onnxruntime.RapidOCR`` on the
same decoded images; and the seconds a question pays when ``ocr_images`` reads the five slides
of a page (warm pipeline, extractive answer, the page fetched anew each time)."""

from __future__ import annotations

from .harness import Row, Target, interleave, median, timed

BENCH = "10 Images"


def run(config, settings, web) -> list[Row]:
    return [ocr_row(config, settings), *question_rows(settings, web)]


def _slides(count: int) -> list[bytes]:
    from testweb.pictures import DRAWN, _drawn

    names = [f"slide-{n}.png" for n in range(1, 6)] + ["timetable.png"]
    return [_drawn(tuple(DRAWN[name])) for name in names[:count]]


def ocr_row(config, settings) -> Row:
    import io

    import numpy
    from PIL import Image
    from rapidocr_onnxruntime import RapidOCR

    from localsearch.images import read_text

    images = _slides(2 if settings.quick else 6)
    raw_engine = RapidOCR()

    def through_localsearch():
        return len(images) / timed(lambda: [read_text(image, config) for image in images])

    def through_rapidocr():
        def read(image):
            return raw_engine(numpy.asarray(Image.open(io.BytesIO(image)).convert("RGB")))
        return len(images) / timed(lambda: [read(image) for image in images])

    runs = interleave({"ours": through_localsearch, "raw": through_rapidocr}, max(1, settings.reps // 2))
    return Row.paired(BENCH, "OCR images/s", runs["ours"], runs["raw"], "images/s", Target("ratio", ">=", 0.95),
                      f"{len(images)} drawn slides of 2-3 lines, 900 px wide")


def question_rows(settings, web) -> list[Row]:
    """A question about a page of five slide images, read and not read, side by side."""
    from localsearch.events import fold_events
    from localsearch.pipeline import Pipeline

    settings_used = {"engines": ["searxng"], "searxng_url": web.url + "/pictures", "llm": False,
                     "freshness_hours": 0.0, "images_per_question": 5}
    pipeline = Pipeline(**settings_used)
    question = "When was the Orrin signal tower rebuilt?"
    stages: list[float] = []

    def ask(ocr: bool):
        answer = fold_events(pipeline.ask(question, settings={"ocr_images": ocr}))
        if ocr:
            stages.append(answer["timings"].get("images", 0.0))
        return answer

    runs = interleave({"with": lambda: timed(lambda: ask(True)), "without": lambda: timed(lambda: ask(False))},
                      1 if settings.quick else 3)
    pipeline.close()
    extra = [w - wo for w, wo in zip(runs["with"], runs["without"])]
    return [Row(BENCH, "extra seconds, 5 images read", median(extra), None, "s", None,
                f"question {median(runs['with']):.2f} s with ocr_images, {median(runs['without']):.2f} s without; "
                f"images stage {median(stages):.2f} s")]
