// One IndexedDB object store, opened per transaction: what the key files (lib/keys.js) and the
// sealed ballots (pages/ballots.js) are kept in. Each keeps only sealed (AES-GCM) records here;
// this module knows nothing of what they hold.

/** A function running `work(objectStore)` in one transaction of `mode` on `dbName`/`storeName`;
 * it resolves to the result of the request `work` returns (undefined when none). */
export function objectStore(dbName, storeName, keyPath) {
  const open = () =>
    new Promise((resolve, reject) => {
      const req = indexedDB.open(dbName, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(storeName, { keyPath });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  return async (mode, work) => {
    const conn = await open();
    return new Promise((resolve, reject) => {
      const t = conn.transaction(storeName, mode);
      const req = work(t.objectStore(storeName));
      t.oncomplete = () => {
        conn.close();
        resolve(req && req.result);
      };
      t.onerror = () => reject(t.error);
    });
  };
}
