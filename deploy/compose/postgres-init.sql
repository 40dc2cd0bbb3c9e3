-- Runs once, on the first start of an empty data volume: LiteLLM gets a
-- database of its own next to Keygate's.
CREATE DATABASE litellm OWNER keygate;
