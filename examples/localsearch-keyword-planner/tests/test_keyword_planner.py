"""The keyword planner, tested as its author would, with localsearch.testing's fixtures."""

from click.testing import CliRunner

import localsearch_keyword_planner as planner


def test_keywords_leave_out_question_words():
    assert planner.keywords("When was the Harrowmere lighthouse first lit?", 6) == "Harrowmere lighthouse first lit"
    assert planner.keywords("Who is it?", 6) == "it"


def test_the_pipeline_searches_for_the_question_and_its_keywords(localsearch_web, localsearch_pipeline):
    localsearch_web.add_page("/lighthouse", "Harrowmere lighthouse",
                             "The Harrowmere lighthouse was first lit on 9 October 1887, after two years of "
                             "building on the rocks of the point. Its keepers kept the light burning every night "
                             "until the lamp was automated in 1962.")
    pipeline = localsearch_pipeline(planner)
    events = list(pipeline.ask("When was the Harrowmere lighthouse first lit?"))
    searched = [request["query"] for event in events if event.type == "done"
                for request in event.data["requests"] if request["kind"] == "search"]
    assert searched == ["When was the Harrowmere lighthouse first lit?", "Harrowmere lighthouse first lit"]
    answer = next(event.data for event in events if event.type == "answer")
    assert "1887" in answer["answer"] and answer["citations"][0]["url"].endswith("/lighthouse")


def test_its_setting_limits_the_keyword_query(localsearch_pipeline):
    pipeline = localsearch_pipeline(planner, keyword_planner_max_words=2)
    assert pipeline.config.keyword_planner_max_words == 2
    assert planner.plan_queries("When was the Harrowmere lighthouse first lit?", pipeline.config) == \
        ["When was the Harrowmere lighthouse first lit?", "Harrowmere lighthouse"]


def test_its_command_prints_the_queries(localsearch_home):
    from localsearch.cli import cli
    from localsearch.testing import registered

    with registered(planner):
        cli.commands.pop("plan", None)
        planner.register_commands(cli)
        result = CliRunner().invoke(cli, ["plan", "Who decoded the honeybee waggle dance?"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["Who decoded the honeybee waggle dance?", "decoded honeybee waggle dance"]
