// The one export the page needs: noVNC's RFB client (MPL-2.0), bundled from its package.
export { default } from '@novnc/novnc/lib/rfb.js';
