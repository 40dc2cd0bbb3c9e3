// njs (nginx JavaScript) half of deploy/nginx/keygate-njs.conf: asks
// Keygate about each request after nginx has read the body, so the model
// named in the JSON body is checked against the key's model list, which
// auth_request alone cannot do (it runs before the body is read).
//
// Needs libnginx-mod-http-js (njs 0.7 or later).

const identity = {
    'X-Keygate-User-Id': 'keygate_user_id',
    'X-Keygate-User-Role': 'keygate_user_role',
    'X-Keygate-Key-Id': 'keygate_key_id',
    'X-Keygate-Team-Id': 'keygate_team_id',
    'X-Keygate-Key-Alias': 'keygate_key_alias',
};

function deny(r, status, type, message) {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify({error: {message: message, type: type, param: null, code: String(status)}}) + '\n');
}

// modelOf returns the body's "model", '' when the body names none, or
// null when there is a body nginx could not hand over (kept in a temp
// file because it exceeds client_body_buffer_size): then the model cannot
// be checked and the request is refused rather than let through unchecked.
function modelOf(r) {
    let text;
    try {
        text = r.requestText;
    } catch (e) {
        return null;
    }
    if (text === undefined || text === '') {
        return (r.headersIn['Content-Length'] || '0') === '0' && !r.headersIn['Transfer-Encoding'] ? '' : null;
    }
    // Read the body as the upstream will. LiteLLM reads a Content-Type
    // containing "form" as a form, and any other body that looks like JSON
    // as JSON (JSON.parse keeps the last of duplicate keys, as Python does).
    // Every model found is sent, comma-separated (Keygate checks each);
    // anything unreadable names no model Keygate can trust, so '' (keys
    // limited to some models are then refused).
    const ct = (r.headersIn['Content-Type'] || '').toLowerCase();
    if (ct.indexOf('form') >= 0) {
        if (ct.indexOf('multipart/') >= 0) {
            return '';
        }
        const qs = require('querystring');
        const v = qs.parse(text).model;
        const all = v === undefined ? [] : (Array.isArray(v) ? v : [v]);
        return all.filter(function (m) { return m !== ''; }).join(',');
    }
    if (/^\s*\{/.test(text)) {
        try {
            const m = JSON.parse(text).model;
            return typeof m === 'string' ? m : '';
        } catch (e) {
            return '';
        }
    }
    return '';
}

async function authorize(r) {
    const model = modelOf(r);
    if (model === null) {
        deny(r, 413, 'bad_request_error', 'Request body too large to check.');
        return;
    }
    // Only the body's model is sent: Keygate trusts this header from
    // nginx, so the client's own X-Keygate-Model must never reach it.
    r.variables.keygate_model = model;

    let reply;
    try {
        reply = await r.subrequest('/_keygate/verify');
    } catch (e) {
        deny(r, 503, 'service_unavailable', 'Authorization is unavailable; try again.');
        return;
    }
    if (reply.status >= 200 && reply.status < 300) {
        for (const h in identity) {
            r.variables[identity[h]] = reply.headersOut[h] || '';
        }
        r.internalRedirect('@keygate_upstream');
        return;
    }
    if ([401, 403, 429, 503].indexOf(reply.status) >= 0) {
        // Keygate's own answer, in LiteLLM's error shape.
        r.headersOut['Content-Type'] = 'application/json';
        r.return(reply.status, reply.responseText);
        return;
    }
    // Keygate unreachable (502/504 from nginx) or anything unexpected:
    // never let the request through.
    deny(r, 503, 'service_unavailable', 'Authorization is unavailable; try again.');
}

export default {authorize};
