"""A guarded, streaming OpenAI-compatible chat proxy: POST /v1/chat/completions.

protocol (wire shapes) · upstream (client to the app's LLM) · windows (the reply cut into
windows) · checks (input and window checks on the moderation service) · serving (the flow) ·
route (HTTP). Off unless RSAFE_UPSTREAM_URL is set.
"""

from .route import install_routes, open_proxy

__all__ = ["install_routes", "open_proxy"]
