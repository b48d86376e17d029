"""The background indexer: pages are stored after the questions that read them, never while a
question runs, a newer read replaces an older one, failures are kept for the next question,
and what waits can be dropped."""

from __future__ import annotations

import threading

from localsearch.indexing import BATCH, Indexer
from localsearch.types import Document, Passage


def page(url: str, passages: int = 3, text: str = "x") -> tuple[Document, list[Passage]]:
    document = Document(url=url, text=text)
    return document, [Passage(url=url, text=f"{text} {i}", start=i, end=i + 1) for i in range(passages)]


class Recorder:
    def __init__(self):
        self.embedded: list[list[str]] = []
        self.stored: list[tuple[str, int, str]] = []
        self.lock = threading.Lock()

    def embed(self, texts):
        with self.lock:
            self.embedded.append(list(texts))
        return [[1.0, 0.0] for _ in texts]

    def store(self, document, passages, vectors):
        assert len(vectors) == len(passages)
        with self.lock:
            self.stored.append((document.url, len(passages), document.text))


def test_pages_are_stored_in_batches_in_the_order_read():
    indexer, recorder = Indexer(), Recorder()
    indexer.submit([page("a", BATCH + 5), page("b", 2)], recorder.embed, recorder.store)
    assert indexer.drain(10)
    assert recorder.stored == [("a", BATCH + 5, "x"), ("b", 2, "x")]
    assert [len(batch) for batch in recorder.embedded] == [BATCH, 5, 2]
    assert indexer.waiting() == 0 and indexer.stored == 2
    indexer.close()


def test_nothing_is_stored_while_a_question_runs():
    indexer, recorder = Indexer(), Recorder()
    indexer.question_started()
    indexer.submit([page("a")], recorder.embed, recorder.store)
    assert not indexer.drain(0.5)  # waits for the question
    assert recorder.embedded == [] and indexer.pending("a") is not None
    indexer.question_ended()
    assert indexer.drain(10)
    assert recorder.stored == [("a", 3, "x")] and indexer.pending("a") is None
    indexer.close()


def test_a_newer_read_replaces_the_one_waiting():
    indexer, recorder = Indexer(), Recorder()
    indexer.question_started()
    indexer.submit([page("a", text="old")], recorder.embed, recorder.store)
    indexer.submit([page("a", text="new")], recorder.embed, recorder.store)
    assert indexer.waiting() == 1 and indexer.pending("a")[0].text == "new"
    indexer.question_ended()
    assert indexer.drain(10)
    assert recorder.stored == [("a", 3, "new")]
    indexer.close()


def test_a_failure_is_kept_for_the_next_question_and_the_rest_is_stored():
    indexer, recorder = Indexer(), Recorder()

    def store(document, passages, vectors):
        if document.url == "bad":
            raise OSError(28, "No space left on device")
        recorder.store(document, passages, vectors)

    indexer.submit([page("bad"), page("good")], recorder.embed, store)
    assert indexer.drain(10)
    assert recorder.stored == [("good", 3, "x")]
    (failure,) = indexer.take_failures()
    assert failure.startswith("bad:") and "No space left" in failure
    assert indexer.take_failures() == []  # reported once
    indexer.close()


def test_what_waits_can_be_dropped():
    indexer, recorder = Indexer(), Recorder()
    indexer.question_started()
    indexer.submit([page("a"), page("b")], recorder.embed, recorder.store)
    assert indexer.cancel() == 2 and indexer.waiting() == 0
    indexer.question_ended()
    assert indexer.drain(1) and recorder.stored == []
    indexer.close()


def test_ctrl_c_while_pages_wait_to_be_stored_drops_them_at_once():
    import signal
    import time

    indexer, recorder = Indexer(), Recorder()

    def slow(texts):  # a batch takes a while, as on a big page
        time.sleep(0.5)
        return recorder.embed(texts)

    indexer.submit([page(f"p{i}", BATCH * 2) for i in range(10)], slow, recorder.store)  # about 10 s of work
    ctrl_c = threading.Timer(0.5, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    ctrl_c.start()
    started = time.monotonic()
    not_stored = indexer.finish(60)
    assert time.monotonic() - started < 5  # not the 60 s it was given, nor the 10 s of work
    assert not_stored >= 8 and len(recorder.stored) + not_stored == 10  # the count is exact
    assert recorder.stored == [] or recorder.stored[0][:2] == ("p0", BATCH * 2)  # whole, if at all


def test_without_ctrl_c_everything_is_stored_within_its_time():
    indexer, recorder = Indexer(), Recorder()
    indexer.submit([page("a"), page("b")], recorder.embed, recorder.store)
    assert indexer.finish(10) == 0
    assert [url for url, _, _ in recorder.stored] == ["a", "b"]
