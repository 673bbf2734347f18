"""What the tests share: payload builders, artifacts with chosen answers, test videos."""
