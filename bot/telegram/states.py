"""Conversation states; their names are stored in the database, so never rename one."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class Join(StatesGroup):
    confirm = State()  # invite code checked, waiting for the user to confirm the institution


class Interview(StatesGroup):
    question = State()  # a question is on screen; text items take typed text here
    problem = State()  # 不符合: waiting for the description of the problem
    measure = State()  # 不符合: waiting for the rectification measure
    status = State()  # 不符合: waiting for "rectified" / "in progress"
    target_date = State()  # 不符合, in progress: waiting for the target date
    correction = State()  # confirm item answered "no": waiting for the correct details
