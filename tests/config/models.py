"""Settings models shared by the config tests."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr


class Server(BaseModel):
    host: str = "localhost"
    port: int = Field(default=8000, ge=1, le=65535)
    timeout: timedelta = timedelta(seconds=5)
    tags: list[str] = []


class Database(BaseModel):
    url: str = "sqlite://"
    password: SecretStr = SecretStr("default-secret")
    pool: int = 5


class Settings(BaseModel):
    debug: bool = False
    name: str = "svc"
    root: Path = Path("/srv")
    server: Server = Server()
    db: Database = Database()
    labels: dict[str, str] = {}
