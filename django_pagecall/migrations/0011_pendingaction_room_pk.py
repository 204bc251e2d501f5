"""PendingAction.room_pk: a member deleted while its private room was being created may have gone
to Pagecall with the room; the block owed for them waits for the room's Pagecall id, found by the
room's primary key (``room_pagecall_id`` is blank meanwhile)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('django_pagecall', '0010_room_sent_name'),
    ]

    operations = [
        migrations.AddField(
            model_name='pendingaction',
            name='room_pk',
            field=models.BigIntegerField(blank=True, help_text="The local room (its primary key), for a call that waits for the room's id.", null=True, verbose_name='room'),
        ),
        migrations.AlterField(
            model_name='pendingaction',
            name='room_pagecall_id',
            field=models.CharField(blank=True, default='', help_text='Blank while the room is being created: the call waits for its id.', max_length=64, verbose_name='Pagecall room id'),
        ),
    ]
