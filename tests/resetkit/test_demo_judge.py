"""The demo's stand-in judge answers the real openai client over a real socket."""

from resetkit.demo_judge import DemoJudgeServer, heuristic_rating


def test_heuristic_prefers_relevant_answers():
    q = "Describe the water cycle and why rain falls"
    assert heuristic_rating(q, "") == 1
    assert heuristic_rating(q, "Rain falls because water in the water cycle condenses into clouds "
                               "and droplets grow heavy; the cycle then repeats as water evaporates.") > \
        heuristic_rating(q, "no")


def test_openai_client_gets_a_parseable_rating():
    from openai import OpenAI

    with DemoJudgeServer() as url:
        client = OpenAI(base_url=url, api_key="unused", max_retries=0)
        reply = client.chat.completions.create(model="gpt-4-0613", messages=[{"role": "user", "content": (
            "[Question]\nWhat is rain?\n\n[The Start of Assistant's Answer]\nAnswer: Rain is water falling "
            "from clouds.\n[The End of Assistant's Answer]")}])
    text = reply.choices[0].message.content
    assert "[[" in text and "stand-in" in text
