"""Every LLM task's prompt and reply model, one module per task (as Graphiti's `prompts/`).

Each module holds the task's fixed `SYSTEM` text, its `Reply` model (what the model must answer, validated
item by item through the validation context), `build(...)` (the chat messages) and `context(...)` (what
the reply is checked against). Pure: no I/O. The package re-exports nothing: import the task's module.

| module | task |
|---|---|
| `extract` | facts from an add's messages, reconciled with the memories shown (one call per add) |
| `followup` | the second call: ref-less facts reconciled with memories the first prompt missed |
| `graph` | the relations a fact states (with enable_graph, in the extraction call) |
| `summary`, `export`, `profile` | documents written from a set of memories |
| `dream` | Dream synthesis: a user's memories distilled into pattern memories (one call per run) |
| `schema_reply` | a reply shaped by the caller's JSON schema (export, profile) |
| `memory_lines` | the numbered memory lines the document tasks show |
"""
