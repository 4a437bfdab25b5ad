"""The finetune-kit command: parses, calls the library, renders."""
