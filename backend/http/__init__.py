"""HTTP plumbing that the API and the pages share and that knows neither: sign-in tokens and session
cookies, CSRF, the route guard, the client's address behind proxies."""
