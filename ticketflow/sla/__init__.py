"""Service standards (服务标准): business-hours calendars and SLA arithmetic."""
