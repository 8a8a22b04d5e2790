// Default attachment rules. Editable: a hosted domain's overrides are merged over these by the
// caller (mergeAttachmentRules in rules/attachments.ts). Sources for the lists: MailScanner's
// filename.rules.conf, Outlook's Level 1 blocked types and Gmail's blocked types, plus the
// container and shortcut formats abused since (ISO/IMG/VHD to dodge Mark-of-the-Web in 2022,
// OneNote in 2023, .search-ms/.library-ms URI handlers).

import type { AttachmentRules } from '../attachments.ts';

/** Run code, install software or change the system when opened on Windows, macOS or Linux. */
const EXECUTABLES = [
  // Windows programs, libraries and control panel items
  'exe', 'ex_', 'com', 'pif', 'scr', 'cpl', 'dll', 'ocx', 'sys', 'drv', 'vxd', 'efi', 'xll',
  // installers and packages
  'msi', 'msp', 'mst', 'msu', 'msix', 'msixbundle', 'appx', 'appxbundle', 'appinstaller', 'application',
  'appref-ms', 'xbap', 'gadget', 'apk', 'dmg', 'pkg', 'mpkg', 'deb', 'rpm', 'app', 'run', 'elf', 'jar', 'jnlp', 'class',
  // Windows script hosts and shells
  'bat', 'cmd', 'btm', 'vb', 'vbs', 'vbe', 'vbp', 'js', 'jse', 'ws', 'wsf', 'wsc', 'wsh', 'sct', 'hta', 'htc',
  'ps1', 'ps1xml', 'ps2', 'ps2xml', 'psc1', 'psc2', 'psd1', 'psm1', 'pssc', 'msh', 'msh1', 'msh2', 'mshxml', 'msh1xml', 'msh2xml',
  'scf', 'inf', 'ins', 'isp', 'reg', 'rgs', 'msc', 'mmc', 'diagcab', 'diagcfg', 'diagpack',
  // Unix and cross-platform scripts
  'sh', 'bash', 'csh', 'ksh', 'zsh', 'command', 'tool', 'workflow', 'action', 'scpt', 'scptd', 'applescript',
  'py', 'pyc', 'pyo', 'pyw', 'pyz', 'pyzw', 'pl',
  // help, shortcuts and URI handlers that launch programs
  'chm', 'hlp', 'hpj', 'cnt', 'lnk', 'url', 'website', 'webpnp', 'desktop', 'library-ms', 'search-ms', 'searchconnector-ms',
  'settingcontent-ms', 'appcontent-ms', 'printerexport', 'wsb', 'grp', 'shb', 'shs', 'xnk', 'mcf', 'mad', 'maf', 'mag', 'mam',
  'maq', 'mar', 'mas', 'mat', 'mau', 'mav', 'maw', 'mda', 'mde', 'mdt', 'mdw', 'mdz', 'ade', 'adp', 'bas',
  'fxp', 'prg', 'prf', 'pcd', 'plg', 'ops', 'osd', 'vsmacros', 'vsw', 'its', 'nsh', 'lib', 'bgi', 'theme', 'themepack',
  // disk images mount with a double click and strip Mark-of-the-Web from what is inside
  'iso', 'img', 'vhd', 'vhdx', 'udf',
  // Office formats abused as droppers: OneNote, Excel web queries and SYLK
  'one', 'onepkg', 'iqy', 'slk',
];

export const DEFAULT_ATTACHMENT_RULES: AttachmentRules = {
  bannedExtensions: EXECUTABLES,
  // What `invoice.pdf.exe` pretends to be: the inner extension of a double extension.
  decoyExtensions: [
    'pdf', 'doc', 'docx', 'docm', 'xls', 'xlsx', 'xlsm', 'ppt', 'pptx', 'rtf', 'txt', 'csv', 'odt', 'ods', 'odp',
    'jpg', 'jpeg', 'png', 'gif', 'bmp', 'tif', 'tiff', 'webp', 'heic', 'mp3', 'mp4', 'wav', 'avi', 'mov', 'mkv', 'wmv',
    'htm', 'html', 'xml', 'eml', 'msg', 'ics', 'vcf', 'zip', 'rar', '7z',
  ],
  // A decoy may legitimately be followed by one of these (a zipped scan: `scan.pdf.zip`).
  doubleExtensionAllowedLast: [
    'pdf', 'doc', 'docx', 'xls', 'xlsx', 'ppt', 'pptx', 'txt', 'csv', 'jpg', 'jpeg', 'png', 'gif',
    'zip', 'rar', '7z', 'gz', 'tgz', 'bz2', 'xz', 'tar', 'p7m', 'p7s', 'asc', 'sig', 'gpg', 'pgp', 'enc', 'bak', 'old', 'orig', 'tmp',
  ],
  // Content that is code whatever its name: "an executable named .pdf is an executable".
  bannedKinds: ['executable', 'script', 'shortcut', 'disk-image'],
  // Extensions that claim a well-known format; a container wearing one of another format is
  // disguised (a zip named invoice.pdf, a rar named photo.jpg).
  claimedFormats: {
    pdf: 'pdf', rtf: 'rtf', png: 'png', jpg: 'jpeg', jpeg: 'jpeg', jpe: 'jpeg', gif: 'gif',
    doc: 'ole', xls: 'ole', ppt: 'ole', msg: 'ole', dot: 'ole', xlt: 'ole', pot: 'ole', pps: 'ole', pub: 'ole', vsd: 'ole',
    docx: 'zip', docm: 'zip', dotx: 'zip', xlsx: 'zip', xlsm: 'zip', xltx: 'zip', xlsb: 'zip', pptx: 'zip', pptm: 'zip', ppsx: 'zip',
    odt: 'zip', ods: 'zip', odp: 'zip', odg: 'zip', epub: 'zip', zip: 'zip', rar: 'rar', '7z': '7z', cab: 'cab', gz: 'gzip', tgz: 'gzip',
    txt: 'text', csv: 'text', htm: 'text', html: 'text', xml: 'text', ics: 'text', vcf: 'text', eml: 'text',
    mp3: 'audio', wav: 'audio', mp4: 'video', mov: 'video', avi: 'video',
  },
  disguiseKinds: ['archive', 'compound'],
  nameMismatch: 'ban',
  encrypted: 'report',
  // RAR, 7z, CAB, gzip… are not opened (no pure-JS reader in the stack): treat as seen by name only.
  unopenedArchives: 'ignore',
  archiveMembers: 'check',
};
