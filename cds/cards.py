"""Typed CDS Hooks 2.0 response model.

The models refuse to be built in a shape the spec forbids (long summaries, unknown indicators,
suggestions without selectionBehavior, override reasons without display, ...), so a rule author
cannot ship an invalid card by accident. `Response.to_json()` drops every null and empty value,
because CDS Hooks forbids them on the wire.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Indicator = Literal["info", "warning", "critical"]
MAX_SUMMARY = 139  # "<140 characters"


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def prune(value: Any) -> Any:
    """Recursively remove None, "", [] and {} (CDS Hooks 2.0 'Use of JSON')."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = prune(item)
            if item is None or item == "" or item == [] or item == {}:
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        items = [prune(item) for item in value]
        return [i for i in items if not (i is None or i == "" or i == [] or i == {})]
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, str_strip_whitespace=True)

    def to_json(self) -> dict[str, Any]:
        return prune(self.model_dump(mode="json", exclude_none=True))


class Coding(_Model):
    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    display: str | None = None


class Source(_Model):
    label: str = Field(min_length=1)
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None

    @field_validator("url", "icon")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("https://", "http://")):
            raise ValueError("source url/icon must be an absolute URL")
        return v


class Action(_Model):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None
    resourceId: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Action:
        if self.type in ("create", "update") and not self.resource:
            raise ValueError(f"{self.type} action needs the full resource")
        if self.type == "delete" and (not self.resourceId or self.resource is not None):
            raise ValueError("delete action needs resourceId (relative reference) and no resource")
        if self.resource is not None and "resourceType" not in self.resource:
            raise ValueError("action resource must be a FHIR resource with resourceType")
        if self.resourceId is not None and "/" not in self.resourceId:
            raise ValueError("resourceId must be a relative reference such as ServiceRequest/123")
        return self


class Suggestion(_Model):
    label: str = Field(min_length=1)
    uuid: str = Field(default_factory=new_uuid)
    isRecommended: bool | None = None
    actions: list[Action] = Field(default_factory=list)


class Link(_Model):
    label: str = Field(min_length=1)
    url: str = Field(min_length=1)
    type: Literal["absolute", "smart"]
    appContext: str | None = None
    autolaunchable: bool | None = None

    @model_validator(mode="after")
    def _app_context(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is only allowed on smart links")
        if not self.url.startswith(("https://", "http://")):
            raise ValueError("link url must be absolute")
        return self


class Card(_Model):
    summary: str = Field(min_length=1, max_length=MAX_SUMMARY)
    indicator: Indicator
    source: Source
    uuid: str = Field(default_factory=new_uuid)
    detail: str | None = None
    suggestions: list[Suggestion] = Field(default_factory=list)
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)

    @model_validator(mode="after")
    def _invariants(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when there are suggestions")
        recommended = sum(1 for s in self.suggestions if s.isRecommended)
        if self.selectionBehavior == "at-most-one" and recommended > 1:
            raise ValueError("at-most-one allows at most one recommended suggestion")
        for reason in self.overrideReasons:
            if not reason.display:
                raise ValueError("override reasons need a display")
        return self

    @property
    def rule(self) -> str | None:
        """The `source.topic` code: which rule produced the card (used for audit and analytics)."""
        return self.source.topic.code if self.source.topic else None


class Response(_Model):
    cards: list[Card] = Field(default_factory=list)
    systemActions: list[Action] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        body = super().to_json()
        body["cards"] = [c.to_json() for c in self.cards]  # "cards": [] is the one allowed empty value
        return body
