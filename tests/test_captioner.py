"""The chat-endpoint captioner against a real local HTTP server that speaks the API."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest

from semlink.extract import ChatCaptioner, word_limits


class FakeLMM(BaseHTTPRequestHandler):
    prompts: ClassVar[list[str]] = []
    auth: ClassVar[list[str | None]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/chat/completions" and body["model"] == "vision-model"
        text, image = body["messages"][0]["content"]
        assert image["image_url"]["url"].startswith("data:image/png;base64,")
        assert base64.b64decode(image["image_url"]["url"].split(",", 1)[1])[:4] == b"\x89PNG"
        prompt = text["text"]
        FakeLMM.prompts.append(prompt)
        FakeLMM.auth.append(self.headers.get("Authorization"))
        if "JSON array" in prompt:
            answer = 'Sure: ["green parrot", "branch", "leaves", "sky"]'
        elif prompt.startswith("Describe the green parrot"):
            answer = "a bright green parrot with a red beak and long tail feathers, perched left"
        elif prompt.startswith("Describe the whole image"):
            answer = "two parrots on a branch in a rain forest with green leaves behind them"
        else:
            answer = "brown and rough"
        payload = json.dumps(
            {"choices": [{"message": {"role": "assistant", "content": answer}}]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    FakeLMM.prompts, FakeLMM.auth = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeLMM)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/v1"
    httpd.shutdown()


def test_three_stage_prompting_with_word_limits(server: str) -> None:
    captioner = ChatCaptioner(server, "vision-model", api_key="k3y")
    image = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    scene = captioner.describe(image, max_objects=3, detail_words=6, caption_words=8)
    assert [name for name, _ in scene.objects] == ["green parrot", "branch", "leaves"]  # J <= 3
    assert scene.objects[0][1] == "a bright green parrot with a"
    assert all(len(details.split()) <= 6 for _, details in scene.objects)
    assert len(scene.caption.split()) == 8
    stages = FakeLMM.prompts
    assert "JSON array" in stages[0] and stages[-1].startswith(
        "Describe the whole image in at most 8"
    )
    assert len(stages) == 1 + 3 + 1
    assert set(FakeLMM.auth) == {"Bearer k3y"}


def test_unreachable_endpoint_fails_clearly() -> None:
    captioner = ChatCaptioner("http://127.0.0.1:9/v1", "m", timeout=2)
    with pytest.raises(RuntimeError, match="captioner at"):
        captioner.describe(np.zeros((8, 8, 3), np.uint8))


def test_word_limits_follow_the_text_budget() -> None:
    small, large = word_limits(30, objects=2), word_limits(120, objects=2)
    assert small[0] < large[0] and small[1] <= large[1]
    assert word_limits(60, objects=0)[0] > word_limits(60, objects=2)[0]
