"""Generate the AI-written sample essays in data/samples/ with the embedded SmolLM2 (chat template).

Existing files are kept, so re-running only fills in what is missing. Sampling is seeded but
CPU kernels may still differ between machines, so outputs are not guaranteed byte-identical.
"""

from __future__ import annotations

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


def main() -> None:
    lm = load_lm("embedded:smollm2")
    for seed, (name, prompt) in enumerate(PROMPTS.items()):
        path = SAMPLES / f"{name}.txt"
        if path.exists():
            continue
        torch.manual_seed(seed)
        inputs = lm.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                  return_tensors="pt", return_dict=True)
        out = lm.model.generate(**inputs, max_new_tokens=360, do_sample=True, temperature=0.7, top_p=0.9,
                                repetition_penalty=1.1)
        text = lm.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        path.write_text(text + "\n")
        print(f"{path.name}: {len(text.split())} words")


if __name__ == "__main__":
    main()
