"""infer=true: the messages of one add, or of several queued adds of one scope, become ADD / UPDATE / DELETE /
NOOP memory events, in one LLM call for a chat turn (`run.InferredAdd`: load, think, apply)."""
