"""The web chat channel: the widget a shop embeds, its visitors, and their real-time
connection."""
