"""LLM-backed generation, responses, rubrics and judging over any OpenAI-compatible endpoint.

``client`` (calls, limits, retries, usage) · ``cache`` (SQLite WAL) · ``parse`` (structured
output) · ``prompts`` (the prompt texts and their ids) · ``generate`` (scenarios, a source) ·
``stages`` (respond, rubric, judge: table stages the runner composes).
"""
