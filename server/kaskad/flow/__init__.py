"""The flow document: the contract shared by the editor, the engine and the API."""
