"""Messaging on kombu/py-amqp: topology as code, confirmed publishing, the consumer runtime."""
