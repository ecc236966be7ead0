"""Topic-based subscriptions (FHIR R4 Subscriptions Backport) for the second-opinion decision topic.

``topic`` names the topic and the Backport's canonicals, ``criteria`` reads and checks a Subscription,
``matching`` decides whether a changed case concerns a subscriber, ``status`` builds the subscription-status
Parameters, ``notifications`` turns a Task change into queued notification Bundles, and ``handshake`` activates
a requested Subscription.
"""
