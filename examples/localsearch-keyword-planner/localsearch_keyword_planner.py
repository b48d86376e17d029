"""Example localsearch plugin.

- ``plan_queries``: search for the question's keywords as well as the question itself, which
  helps engines that match words rather than meaning.
- ``register_settings``: ``keyword_planner_max_words`` limits the keyword query.
- ``register_commands``: ``localsearch plan QUESTION`` shows the queries that would be run.

Install it beside localsearch with ``pip install -e examples/localsearch-keyword-planner``.
"""

import click

from localsearch import hookimpl

QUESTION_WORDS = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are",
                  "was", "were", "do", "does", "did", "the", "a", "an", "of", "in", "on", "to", "and"}


def keywords(question: str, max_words: int) -> str:
    words = [w.strip("?!.,;:\"'()") for w in question.split()]
    return " ".join([w for w in words if w and w.lower() not in QUESTION_WORDS][:max_words])


@hookimpl
def register_settings(register):
    register("keyword_planner_max_words", 6, "most words in the keyword query")


@hookimpl
def plan_queries(question, config):
    query = keywords(question, config.keyword_planner_max_words)
    return [question] if not query or query == question else [question, query]


@hookimpl
def register_commands(cli):
    @cli.command()
    @click.argument("question", nargs=-1, required=True)
    def plan(question):
        """Show the search queries for QUESTION."""
        from localsearch.config import Config
        from localsearch.plugins import pm

        config = Config.load()
        for query in pm.hook.plan_queries(question=" ".join(question), conversation=[], config=config) or []:
            click.echo(query)
