package app

// SDKCacheSize is sdkCacheSize, for app_test.
var SDKCacheSize = sdkCacheSize
