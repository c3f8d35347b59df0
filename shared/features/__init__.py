"""What the product does on top of session memory: the chat turn (``chat``, with its
``responders``), admin reports (``admin``), a user's data export (``export``) and erasure
(``erasure``), the sweep of idle sessions (``sweep``) and the end trigger's counting
(``triggers``). Each takes the manager or the layers it needs, handed to it by
``shared.instance`` or the entry point.
"""
