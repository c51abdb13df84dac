"""Persistence of the user statistics (plus this service's inbox).

Every count is a row that handlers only ever increment with an atomic upsert, so concurrent
consumers never lose or double an update.
"""

import enum
from datetime import date

from sqlalchemy import BigInteger, Date, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from signup_shared.inbox import InboxMixin


class Base(DeclarativeBase):
    pass


class CounterName(enum.StrEnum):
    TOTAL_USERS = "total_users"
    ACTIVATED_SUBSCRIPTIONS = "activated_subscriptions"


class Counter(Base):
    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class PlanSignups(Base):
    __tablename__ = "plan_signups"

    plan: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class DailySignups(Base):
    """Signups per calendar day in UTC."""

    __tablename__ = "daily_signups"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class InboxMessage(InboxMixin, Base):
    pass
