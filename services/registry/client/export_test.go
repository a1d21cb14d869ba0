package client

// SetSearchPage makes SearchRuns ask for n runs per page until the returned func is called.
func SetSearchPage(n int) (restore func()) {
	old := searchPage
	searchPage = n
	return func() { searchPage = old }
}
