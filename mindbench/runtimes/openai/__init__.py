"""The openai runtime: an OpenAI-compatible endpoint measured from outside (runtime.py), its
engine (engine.py), the HTTP/SSE client (client.py) and serve-bench's load generator (loadgen.py)."""
