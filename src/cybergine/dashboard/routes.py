"""Every dashboard router, in one list for the app factory."""

from cybergine.dashboard import (
    api_reference_pages,
    asset_routes,
    assistant_pages,
    assistant_try_pages,
    auth_pages,
    channel_pages,
    customer_pages,
    inbox_pages,
    knowledge_pages,
    knowledge_qa_pages,
    knowledge_tester_pages,
    misc_pages,
    sandbox_pages,
    settings_pages,
    team_pages,
    whatsapp_pages,
)

routers = [
    api_reference_pages.router,
    asset_routes.router,
    auth_pages.router,
    misc_pages.router,
    inbox_pages.router,
    customer_pages.router,
    team_pages.router,
    settings_pages.router,
    sandbox_pages.router,
    assistant_pages.router,
    assistant_try_pages.router,
    knowledge_tester_pages.router,
    knowledge_qa_pages.router,
    knowledge_pages.router,
    channel_pages.router,
    whatsapp_pages.router,
]
