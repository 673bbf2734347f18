"""The HTTP surface: the webhook, access and signing, forwarding, the page, similar assets."""
