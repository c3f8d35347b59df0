"""Session memory: the session manager (``manager``), failover and recovery after an
outage (``recovery``), the end and its analytics (``ending``), rolling summaries
(``summaries``, ``summarizer``), the LLM's context (``context``) and the validated
payloads and answers (``models``). It drives the layers of ``shared.store`` through their
protocol and knows nothing of HTTP or of the features built on it.
"""
