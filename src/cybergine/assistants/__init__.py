"""AI assistants: each organisation configures several, with a persona, instructions, tone,
languages, the knowledge they may search, the language model they use, business hours
and the words that hand a conversation to a person."""
