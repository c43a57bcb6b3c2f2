"""Generate the AI-written sample texts in data/samples/ with the embedded models.

* English essays (``data/samples/ai_*.txt``): SmolLM2-135M-Instruct answering an essay prompt (chat template).
* Chinese texts (``data/samples/zh/ai_zh_*.txt``): Gemma-3-270M (``embedded:gemma3``, requirements-multilingual.txt)
  continuing the start of an essay. Gemma-3-270M is a *base* model, so it is given the start of a document (a
  title and one opening sentence written by us) rather than an instruction; only its continuation is kept, cut at
  its last complete sentence. A seed whose continuation is web debris (links, HTML) or too short is skipped
  for the next one (at most ``ZH_MAX_TRIES``); the seed used is printed.

Existing files are kept, so re-running only fills in what is missing (and loads only the models it needs).
Sampling is seeded but CPU kernels may still differ between machines, so outputs are not guaranteed
byte-identical.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from detector.lm import load_lm

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
PROMPTS = {
    "ai_remote_work": "Write a short essay (about 250 words) on the advantages and disadvantages of remote work.",
    "ai_social_media": "Write a short persuasive essay (about 250 words) on whether social media is harmful to "
                       "teenagers.",
    "ai_climate_cities": "Write a short essay (about 250 words) on how cities can adapt to climate change.",
    "ai_reading_habits": "Write a short essay (about 250 words) about why reading books matters in the digital age.",
}
# Chinese: the start of an essay for the base model to continue ("Title: ..." and a first sentence).
ZH_FRAME = "标题：{title}\n\n{opening}"
ZH_PROMPTS = {  # name: (title, opening sentence)
    "zh/ai_zh_first_trip_alone": ("第一次一个人旅行", "去年夏天，我第一次一个人出门旅行。"),
    "zh/ai_zh_night_running": ("在城市里夜跑的这一年", "我是从去年春天开始夜跑的。"),
    "zh/ai_zh_keeping_a_diary": ("我为什么开始写日记", "小时候我最讨厌的作业就是写日记。"),
}
ZH_MAX_TRIES = 5
ZH_MIN_CHARS = 200
ZH_SENTENCE_END = re.compile(r"[。！？!?][”」』）)]*")


def generate_english() -> None:
    """SmolLM2 essays for the English prompts whose files are missing."""
    todo = {name: prompt for name, prompt in PROMPTS.items() if not (SAMPLES / f"{name}.txt").exists()}
    if not todo:
        return
    lm = load_lm("embedded:smollm2")
    for seed, (name, prompt) in enumerate(PROMPTS.items()):
        if name not in todo:
            continue
        path = SAMPLES / f"{name}.txt"
        torch.manual_seed(seed)
        inputs = lm.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                  return_tensors="pt", return_dict=True)
        out = lm.model.generate(**inputs, max_new_tokens=360, do_sample=True, temperature=0.7, top_p=0.9,
                                repetition_penalty=1.1)
        text = lm.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        path.write_text(text + "\n")
        print(f"{path.name}: {len(text.split())} words")


def cut_at_last_sentence(text: str) -> str:
    """The text up to its last complete Chinese (or Western) sentence end; the whole text if it has none."""
    ends = list(ZH_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()] if ends else text


def usable(text: str) -> bool:
    """Prose, not web debris: long enough, no links or markup."""
    return len(text) >= ZH_MIN_CHARS and not any(s in text for s in ("http", "www.", "<", ">"))


def generate_chinese(max_new_tokens: int = 360) -> None:
    """Gemma-3-270M continuations of the Chinese essay openings whose files are missing."""
    todo = [name for name in ZH_PROMPTS if not (SAMPLES / f"{name}.txt").exists()]
    if not todo:
        return
    lm = load_lm("embedded:gemma3")
    for index, (name, (title, opening)) in enumerate(ZH_PROMPTS.items()):
        if name not in todo:
            continue
        path = SAMPLES / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        inputs = lm.tokenizer(ZH_FRAME.format(title=title, opening=opening), return_tensors="pt")  # adds <bos>
        for seed in range(100 + 10 * index, 100 + 10 * index + ZH_MAX_TRIES):
            torch.manual_seed(seed)
            out = lm.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=True, temperature=0.8,
                                    top_p=0.95, repetition_penalty=1.15)
            text = lm.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            text = cut_at_last_sentence(text.strip())
            if usable(text):
                break
            print(f"{name}: seed {seed} skipped ({len(text)} characters, or links/markup)")
        path.write_text(text + "\n")
        print(f"{path.relative_to(SAMPLES)}: seed {seed}, {len(text)} characters")


def main() -> None:
    generate_english()
    generate_chinese()


if __name__ == "__main__":
    main()
