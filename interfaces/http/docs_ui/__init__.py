"""The API docs page's assets, served by the node itself (no CDN, nothing inline).

``redoc.standalone.js`` is Redoc 2.5.4 (npm package ``redoc@2.5.4``, file
``bundles/redoc.standalone.js``, sha256
``dcaf76612bc4a3fbcc923a8966dee2f6146a5f32e5ce1b6f02dd60cbbf89500b``),
vendored unchanged. Licence: MIT, Copyright (c) 2015-present, Rebilly, Inc.
(``LICENSE.redoc.txt``); the licences of what the bundle includes are in
``redoc.standalone.js.LICENSE.txt``. To update: ``npm pack redoc@VERSION``,
copy the same three files, and change the version and hash here.

``init.js`` starts Redoc on the page (an external file, so the page's CSP
needs no inline script), and ``docs.css`` is the page's only style sheet.
"""
