// The HTTP calls the page makes: the results API, similar assets, upload signatures, the forward.
// The access key is only ever sent as an Authorization header.

import { config } from "./config.js";
import { errorText } from "./format.js";

export function authorization(key) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// GET a JSON API: the response, and its body (null when it is not JSON).
export async function getJson(url, key) {
  const response = await fetch(url, {
    headers: { Accept: "application/json", ...authorization(key) },
    cache: "no-store",
  });
  const body = await response.json().catch(() => null);
  return { response, body };
}

// One result by asset_id (no key needed), or null while none is stored.
export async function fetchRecord(assetId) {
  const params = new URLSearchParams({ asset_id: assetId });
  const response = await fetch(`${config.resultsApi}?${params}`, {
    headers: { Accept: "application/json" },
    cache: "no-store",
  });
  if (!response.ok) throw new Error(`results API answered HTTP ${response.status}`);
  const body = await response.json();
  return (body.results || [])[0] || null;
}

// Ask the results API whether `key` is the access key: true, false, or an error text.
export async function checkKey(key) {
  try {
    const { response, body } = await getJson(`${config.resultsApi}?limit=1`, key);
    if (response.ok) return true;
    if (response.status === 401) return false;
    return (body && body.error) || `HTTP ${response.status}`;
  } catch (error) {
    return errorText(error);
  }
}

// Our server signs the widget's upload parameters (with the API secret it never shares).
export async function requestSignature(paramsToSign, key) {
  const response = await fetch(config.signUploadApi, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json", ...authorization(key) },
    body: JSON.stringify({ params_to_sign: paramsToSign }),
    cache: "no-store",
  });
  const body = await response.json().catch(() => null);
  return { response, body };
}

// Forward the signed upload result to on_upload (works without a public webhook URL).
export async function forwardUpload(info) {
  if (!config.forwardUrl) return { record: null, error: null };
  const body = {
    public_id: info.public_id,
    version: info.version,
    signature: info.signature,
    asset_id: info.asset_id,
    resource_type: info.resource_type,
    type: info.type,
  };
  try {
    const response = await fetch(config.forwardUrl, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => null);
    if (response.ok) return { record: data, error: null };
    if (response.status === 409) return { record: null, error: null }; // classifying elsewhere
    return { record: null, error: (data && data.error) || `HTTP ${response.status}` };
  } catch (_error) {
    return { record: null, error: "on_upload could not be reached" };
  }
}
