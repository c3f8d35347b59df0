"""chat-memory's benchmark suite (`make bench`): see BENCHMARKS.md. Never part of the tests."""
