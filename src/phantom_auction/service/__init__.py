"""The live auction service: settlement clients and bidders over HTTP and WebSocket.

Modules: ``app`` (FastAPI routes and the WebSocket protocol), ``house`` (live auctions
driven through the engine), ``store`` (SQLite / PostgreSQL / in-memory persistence),
``group_commit`` (one fsync for many acks), ``auth`` (bearer tokens, Ed25519), ``penalties``,
``metrics`` and ``commands`` (the ``serve``, ``clients`` and ``bidders`` commands).
Needs the ``service`` extra: ``pip install 'phantom-auction[service]'``.
"""
