"""chatcore mounted into your own FastAPI app.

uvicorn examples.mount_fastapi:app --port 8000
# WebSockets at ws://127.0.0.1:8000/chat/ws, the browser client at /chat/
"""

from fastapi import FastAPI

from chatcore.server import ChatServer, ServerSettings

chat = ChatServer(ServerSettings(data_dir="./chatcore-data", dev=True))
app = FastAPI(lifespan=chat.lifespan)  # runs the chat node with your app
app.mount("/chat", chat.app)


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "from your own app"}
