"""Routing (推送到对应的负责人): which team owns a new ticket, and who in it takes it."""
