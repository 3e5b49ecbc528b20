"""The domain core: checklists, interview rules, roster validation.

Nothing in this package imports aiogram; the Telegram layer and the console chat
translate between their transports and these plain functions.
"""
