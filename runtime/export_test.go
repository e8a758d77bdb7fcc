package runtime

// EncodeManifest lets the external tests forge a child's manifest.
var EncodeManifest = encodeManifest
