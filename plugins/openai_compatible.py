"""Answer writer: any OpenAI-compatible chat server (llama.cpp's server, llama_cpp.server,
ollama, LM Studio, vLLM). Used when ``llm_url`` is set; otherwise the next plugin answers."""

from __future__ import annotations

import json

from localsearch import hookimpl
from localsearch.outgoing import record
from localsearch.errors import LocalsearchError


@hookimpl(trylast=True)
def register_settings(register):
    register("llm_url", "", "base URL of an OpenAI-compatible server, e.g. http://localhost:8080/v1")
    register("llm_model", "", "model name to ask that server for (empty: its default)")
    register("llm_api_key", "", "API key for that server, if it wants one")
    register("llm_timeout", 120.0, "seconds to wait for the server's answer")


class OpenAICompatibleModel:
    def __init__(self, config):
        self.base = config.llm_url.rstrip("/")
        self.model = config.llm_model
        self.timeout = config.llm_timeout
        self.headers = {"Authorization": f"Bearer {config.llm_api_key}"} if config.llm_api_key else {}
        self.name = self.model or self.base

    def stream(self, messages, max_tokens=256, temperature=0.2):
        import httpx

        body = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature, "stream": True}
        if self.model:
            body["model"] = self.model
        try:
            record("model", f"{self.base}/chat/completions")
            with httpx.stream("POST", f"{self.base}/chat/completions", json=body, headers=self.headers,
                              timeout=self.timeout) as response:
                if response.status_code != 200:
                    response.read()
                    raise LocalsearchError(f"{self.base} answered HTTP {response.status_code}: {response.text[:200]}")
                for line in response.iter_lines():
                    # Server-sent events: "data: {json}" lines, ending with "data: [DONE]".
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        return
                    choices = json.loads(payload).get("choices") or [{}]
                    delta = (choices[0].get("delta") or {}).get("content")
                    if delta:
                        yield delta
        except httpx.HTTPError as error:
            raise LocalsearchError(f"cannot reach the LLM server {self.base}: {error}") from None


@hookimpl  # not trylast: when llm_url is set it must win over the bundled llama.cpp model
def chat_model(config):
    if not config.llm_url:
        return None
    return OpenAICompatibleModel(config)
