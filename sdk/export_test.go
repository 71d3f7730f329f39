package sdk

// CacheLen exposes the verified-token cache's size to tests.
func CacheLen(v *Verifier) int {
	if v.cache == nil {
		return 0
	}
	return v.cache.len()
}
