// merge-patch.ts: RFC 7386 JSON Merge Patch, without mutating its inputs.
//
// mergePatch(target, patch) returns a new document; parts of `target` that the patch
// leaves alone are shared with the result, so treat both as immutable.
export function isPlainObject(value) {
    return value !== null && typeof value === 'object' && !Array.isArray(value);
}
export function mergePatch(target, patch) {
    if (!isPlainObject(patch))
        return patch;
    const out = isPlainObject(target) ? { ...target } : {};
    for (const [key, value] of Object.entries(patch)) {
        if (value === null)
            delete out[key];
        else
            out[key] = mergePatch(out[key], value);
    }
    return out;
}
export function deepFreeze(value) {
    if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
        Object.freeze(value);
        for (const child of Object.values(value))
            deepFreeze(child);
    }
    return value;
}
