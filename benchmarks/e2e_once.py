"""One cold question in a new process, for the end-to-end benchmark: prints its milestones as
JSON, in seconds since ``--origin`` (the parent's clock just before it started this process)."""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="the test web (a SearXNG-compatible search)")
    parser.add_argument("--question", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--origin", type=float, default=None)
    parser.add_argument("--max-tokens", type=int, default=None)
    args = parser.parse_args(argv)
    origin = args.origin or time.time()

    from localsearch.pipeline import Pipeline

    from .e2e import pipeline_settings, record_question, register_recorder

    recorder = register_recorder()
    pipeline = Pipeline(**pipeline_settings(args.url, args.data_dir, args.max_tokens))
    marks = record_question(pipeline, args.question, origin)
    marks["prompt_tokens"] = recorder.prompt_tokens()
    print(json.dumps(marks))


if __name__ == "__main__":
    main()
