"""Answer quality with a real model (benchmarks.md §4, issue 20): LoCoMo scored as Mem0's published evaluation
scores it, against any OpenAI-compatible endpoint.

    OPENAI_API_KEY=... python -m bench.locomo_qa --base-url https://api.openai.com/v1 --model gpt-4o-mini \\
        --judge-model gpt-4o-mini --price-in 0.15 --price-out 0.60
    python -m bench.locomo_qa --base-url http://127.0.0.1:11434/v1 --model qwen2.5:7b-instruct \\
        --judge-model qwen2.5:14b-instruct

1. **Ingest** (`plan`, `ingest`), as Mem0's `evaluation/src/memzero/add.py`: both speakers of each conversation,
   each in its own namespace (`user_id "<speaker>_<idx>"`, the speaker's turns as `user`, the other's as
   `assistant`), two messages per add, `infer=true`, `POST /v1/memories/` processed in the request, the session
   date as `timestamp` and as `metadata.timestamp`; the project's custom instructions are Mem0's evaluation text.
2. **Answer** (`answer`, `prompts`), as its `memzero/search.py`: the top-k memories of each namespace for the
   question (v1 search, as its client), listed as "<timestamp>: <memory>" in Mem0's `ANSWER_PROMPT`, sent as one
   system message at temperature 0.
3. **Judge** (`llm`, `prompts`): Mem0's LLM-as-judge prompt verbatim (`mem0`: J, comparable with published J) and
   a strict variant (`strict`); F1 and BLEU-1 beside them (`metrics`). Category 5 runs only when listed.
4. **Report** (`report`): per category id and overall; tokens per add (memserver's events) and per question;
   latency; estimated (`estimate`, shown and confirmed before anything starts) against actual cost.

The run directory (`store`) holds the manifest and append-only logs; `--resume` continues it and never sends an
add that was applied. Without `--server` the run has its own Postgres (in the run directory, kept for
`--resume`) and `memserver serve` (`service`), whose LLM is the answer model.

Texts of Mem0's evaluation: mem0ai/mem0 b3ede5b, Apache License 2.0 (`mem0_eval/README.md`).
"""
